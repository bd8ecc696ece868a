"""Plumbing every process shares: settings, logging, tracing, metrics, database, gRPC server."""
