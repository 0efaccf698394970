"""Billing and finance: invoices, payments, insurance claims and the accounts dashboard."""
