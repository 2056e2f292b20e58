"""The ``aeflow`` command: helpers around the pipeline (the pipeline itself runs with ``dvc repro``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from aeflow.errors import AeflowError

app = typer.Typer(
    help="aeflow: autoencoders as reproducible DVC pipelines tracked in MLflow.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


@app.command("check-params")
def check_params(
    params: Annotated[Path, typer.Option(help="params file to validate")] = Path("params.yaml"),
) -> None:
    """Validate a params file (including each use case's model section) without running anything."""
    from aeflow.config import USE_CASES, load_params
    from aeflow.models.registry import variant_config

    try:
        loaded = load_params(params)
        for uc in USE_CASES:
            variant_config(loaded.use_case(uc).model.model_dump(), where=f"{uc}.model", file=str(params))
    except AeflowError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"[green]{params}: valid[/green]")


@app.command("variants")
def variants() -> None:
    """List the registered autoencoder variants and their options."""
    from aeflow.config import AEConfig
    from aeflow.models.registry import available, get_variant

    table = Table("variant", "class", "own options")
    for name in available():
        cls = get_variant(name)
        own = [f for f in cls.config_class.model_fields if f not in AEConfig.model_fields]
        table.add_row(name, cls.__name__, ", ".join(own) or "—")
    console.print(table)


if __name__ == "__main__":
    app()
