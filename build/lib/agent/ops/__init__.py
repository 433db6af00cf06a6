"""The use cases: process a document, a person's decisions, re-match, status, health,
digest, costs."""
