"""kb — a searchable knowledge base over Chinese local governments' rule-of-law annual reports."""

__version__ = "0.1.0"
