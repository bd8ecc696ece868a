"""`make bench`: the platform's load generator and benchmark (see docs/performance.md).

One run measures, against one Temporal server it starts itself, the full stack
next to bare baselines on the same server and machine: a workflow of four
no-op activities, a bare update-with-start, and a bare grpc.aio server. The
ratios between them are what the project's performance targets are stated in.
"""
