"""`engine crd --operator REF`: print the operator's CustomResourceDefinition as YAML
(`engine crd --operator REF | kubectl apply -f -`). Several --operator print one document
each and are refused when two claim one kind."""

from __future__ import annotations

import click

from engine.cli.operator_ref import check_distinct_kinds, default_ref, load_operator
from engine.deploy.base import crd_yaml


@click.command(name="crd")
@click.option(
    "--operator",
    "operator_refs",
    multiple=True,
    metavar="REF",
    help="The operator (module:ATTR or file.py:ATTR), repeatable [env ENGINE_OPERATOR; "
    "default: the example Site].",
)
def command(operator_refs: tuple[str, ...]) -> None:
    """Print the CRD of each operator."""
    references = operator_refs or (default_ref(),)
    operators = [load_operator(ref) for ref in references]
    check_distinct_kinds(operators)
    documents = [
        crd_yaml(operator, operator_ref=ref)
        for ref, operator in zip(references, operators, strict=True)
    ]
    click.echo("---\n".join(documents), nl=False)
