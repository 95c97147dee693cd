"""Governance: identity, roles, permissions and the audit log."""
