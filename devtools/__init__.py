"""Development tools shared by the tests and the benchmarks (never deployed): the fake servers
(devtools/fakes/) and rows seeded straight into PostgreSQL (devtools/seeding.py)."""
