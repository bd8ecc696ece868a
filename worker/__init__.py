"""The Temporal worker: the order workflow and the activities it runs."""
