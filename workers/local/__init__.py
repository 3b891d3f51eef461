"""The local development stack: Redis, the API and one worker per queue as supervised processes
(`python -m workers.local.stack`, which scripts/run starts). Torch-free: the workers are processes."""
