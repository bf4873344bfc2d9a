"""The reliability run: the fault matrix and race scenarios against gunicorn + PostgreSQL + Redis
(``python -m bench.reliability``, ``make reliability``)."""
