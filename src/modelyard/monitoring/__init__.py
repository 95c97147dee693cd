"""Monitoring: reference profiles, drift, data quality and performance checks, monitors, alerts."""
