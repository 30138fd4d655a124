"""Reads a merged compose file (`docker-compose config`) on stdin and writes
it without the published ports of services on the host's network: the
engine refuses both together, and an override file cannot remove a list
entry of the file it extends."""

import sys

import yaml  # PyYAML, which docker-compose itself depends on

config = yaml.safe_load(sys.stdin)
for service in config.get("services", {}).values():
    if service.get("network_mode") == "host":
        service.pop("ports", None)
yaml.safe_dump(config, sys.stdout, sort_keys=False)
