"""Reliability and security scenarios of RELIABILITY.md section 4, one test per scenario."""
