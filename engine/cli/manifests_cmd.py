"""`engine manifests --operator REF --image IMAGE`: write the kustomize base that runs the
operator in a cluster (CRD, ServiceAccount, least-privilege roles, claim, Deployment,
metrics Service), for `kubectl apply -k DIR`."""

from __future__ import annotations

import re
from pathlib import Path

import click

from engine.cli.operator_ref import default_ref, load_operator, operator_option
from engine.deploy.base import BaseOptions, render_base, write_base
from engine.deploy.webhook import WebhookOptions

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$")


class ManifestsInputError(click.ClickException):
    """A bad --name/--namespace/--image/--out: one line, exit code 2."""

    exit_code = 2


@click.command(name="manifests")
@operator_option("The operator the base runs.")
@click.option("--image", required=True, help="The image running it, e.g. registry/op:1.0.")
@click.option("--namespace", default="engine-system", show_default=True, help="Its namespace.")
@click.option(
    "--name",
    default="engine",
    show_default=True,
    help="Name of its ServiceAccount, roles, Deployment, claim and Lease.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("config"),
    show_default=True,
    help="Directory to write the base into (its files are replaced).",
)
@click.option(
    "--webhook-certificates",
    type=click.Choice(["self-signed", "cert-manager"]),
    default="self-signed",
    show_default=True,
    help="With webhooks: the engine's own CA injected as caBundle, or cert-manager's "
    "Certificate and CA injector.",
)
@click.option(
    "--webhook-failure-policy",
    type=click.Choice(["Fail", "Ignore"]),
    default="Fail",
    show_default=True,
    help="With webhooks: the configurations' failurePolicy.",
)
def command(
    operator_ref: str | None,
    image: str,
    namespace: str,
    name: str,
    out: Path,
    webhook_certificates: str,
    webhook_failure_policy: str,
) -> None:
    """Write the kustomize base for OPERATOR into --out."""
    for flag, value in (("--namespace", namespace), ("--name", name)):
        if not _DNS_LABEL.match(value):
            raise ManifestsInputError(
                f"{flag} {value!r} is not a DNS label (lowercase letters, digits and '-', "
                "at most 42 characters)"
            )
    if not image.strip() or any(c.isspace() for c in image):
        raise ManifestsInputError(f"--image {image!r} is not an image reference")
    reference = operator_ref or default_ref()
    operator = load_operator(reference)
    webhooks = WebhookOptions(
        cert_manager=webhook_certificates == "cert-manager",
        failure_policy="Ignore" if webhook_failure_policy == "Ignore" else "Fail",
    )
    options = BaseOptions(
        operator_ref=reference, image=image, namespace=namespace, name=name, webhooks=webhooks
    )
    files = render_base(operator, options)
    try:
        written = write_base(files, out)
    except OSError as error:
        raise ManifestsInputError(f"cannot write into {out}: {error.strerror}") from None
    click.echo(f"wrote {len(written)} files into {out} (apply: kubectl apply -k {out})")
