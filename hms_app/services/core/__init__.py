"""The core every domain stands on: who acts and may act, the audit trail, errors, live events, paging, formatting of time, text and money, stored files, PDF layout, counters and passwords."""
