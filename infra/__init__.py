"""Cloud resources of the sagestep stack (Pulumi)."""
