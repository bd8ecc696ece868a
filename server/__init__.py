"""The gRPC services of the order platform, one subpackage each, and their shared plumbing."""
