"""Enforcement: the policy catalogue, planning graduated actions, the platform adapters that
apply and reverse them, and appeals."""
