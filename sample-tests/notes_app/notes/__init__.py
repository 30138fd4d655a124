"""A tiny notes store on Postgres: the sample application whose tests need a database."""
