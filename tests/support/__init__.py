"""Test support modules shared across the test directories (no tests here)."""
