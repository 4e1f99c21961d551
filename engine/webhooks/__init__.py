"""The operator's webhooks: admission (validate, mutate) and conversion, served over HTTPS.

`admission_review` and `conversion_review` answer one AdmissionReview v1 / ConversionReview
v1 body each (no I/O besides the operator's handlers); `server` serves them on aiohttp
with TLS, journals every decision (`decisions`) and counts it in the metrics;
`certificates` issues, persists and rotates the self-signed CA and serving certificate;
`configurations` renders the Validating/MutatingWebhookConfiguration objects and the
CRD's conversion block; `registration` puts them into a cluster. See docs/webhooks.md.
"""
