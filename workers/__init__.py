"""The worker side, in three folders that say which side of the torch line a module is on:
shared/ (torch-free, all the API may import), jobs/ (what a worker process runs, with torch) and
local/ (the local development stack). `python -m workers` starts a worker (__main__.py)."""
