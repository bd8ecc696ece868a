"""Plumbing every process shares: settings, logging, database, gRPC server factory."""
