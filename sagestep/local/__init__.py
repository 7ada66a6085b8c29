"""The embedded engine: the synthesized stack on moto's Step Functions interpreter, with hooks."""
