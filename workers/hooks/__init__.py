"""The webhooks worker (`python -m workers.hooks`): delivers the events that workers.shared.webhooks
records. Torch-free, so it is a small process of its own."""
