"""Admission and conversion webhooks: the configurations the server calls, how a request
is matched to them, the HTTPS calls (AdmissionReview v1, ConversionReview v1), and the
mutating → schema → validating chain every write goes through."""
