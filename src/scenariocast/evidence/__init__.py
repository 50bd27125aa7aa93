"""Readings and what they mean as evidence: dates, which readings count, likelihoods."""
