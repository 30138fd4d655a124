"""`importlib.metadata`, imported when first used rather than at start-up.

pluggy and pytest import it at start-up, and with it email, zipfile and
more: about a tenth of the runner's start-up CPU in a container. They use it
only to scan the installed packages for plugins, which a run in the runner
image skips (it has no third-party plugins; see te_runner). `defer()` puts
a stand-in in its place: the first attribute anyone reads from it (a test,
or pytest's `required_plugins`) imports the real module, whose contents the
stand-in then takes on.
"""

import importlib
import importlib.util
import sys
import threading
import types

NAME = "importlib.metadata"
_lock = threading.Lock()


class _StandIn(types.ModuleType):
    def __getattr__(self, attr):
        with _lock:
            if sys.modules.get(NAME) is self:
                del sys.modules[NAME]
            real = importlib.import_module(NAME)
            vars(self).update(vars(real))
        return getattr(real, attr)


def defer():
    if NAME in sys.modules:
        return
    stand_in = _StandIn(NAME)
    stand_in.__spec__ = importlib.util.find_spec(NAME)
    sys.modules[NAME] = stand_in
    importlib.metadata = stand_in
