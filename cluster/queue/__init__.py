"""The durable job queue: jobs submitted from a notebook or the command line wait in SQLite and a
dispatcher starts them through Ray's job API (client.py: Client, JobHandle; dispatcher.py;
store.py: JobQueue; registry.py: the jobs a queue may run; `python -m cluster.queue ...`: the
command line)."""
