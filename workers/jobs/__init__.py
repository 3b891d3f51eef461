"""The torch side of the workers: what a worker process runs. The job functions the API enqueues by
name (training, latents, evaluation), the generate lane's consumer and batching, the model cache, the
runtime, the worker class, heartbeats and recovery of abandoned jobs."""
