"""What the package says about the model's method: name, family, paper and its DOI (torch-free).

The method catalogue (:mod:`livedenoise.models.catalogue`) is the source; a model whose method is not (or no
longer) registered falls back on what its own spec recorded at export (``extra``: family, citation).

The zoo cites papers by DOI. The catalogue's references carry one only where the paper is known by nothing
else (TeD), so the DOIs of the other papers are listed here, each checked against the paper's own page or
its authors' repository.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote_plus

from livedenoise.clients.model_spec import ModelSpec

__all__ = ["MethodFacts", "method_facts", "PAPER_DOIS"]

_DOI = re.compile(r"doi:\s*(10\.\d{4,9}/[^\s,;]+)", re.IGNORECASE)

#: DOI of each registered method's paper (the paper its catalogue citation names).
PAPER_DOIS = {
    "deepcad": "10.1038/s41592-021-01225-0",
    "deepcad_rt": "10.1038/s41587-022-01450-8",
    "deepinterpolation": "10.1038/s41592-021-01285-2",
    "deepsemi": "10.1038/s41592-023-02058-9",
    "deepvid": "10.1038/s41592-023-01820-3",
    "deepvid_v2": "10.1101/2024.05.16.594448",  # the bioRxiv preprint the catalogue cites
    "fast": "10.1038/s41467-025-64681-8",
    "sn2n": "10.1038/s41592-024-02400-9",
    "srdtrans": "10.1038/s43588-023-00568-2",
    "support": "10.1038/s41592-023-02005-8",
}


@dataclass(frozen=True)
class MethodFacts:
    """A method as the package describes it."""

    name: str
    family: str
    citation: str  # full reference text; empty when unknown
    paper: str  # short form, e.g. "Li et al., Nat Biotechnol 2023"
    description: str
    provisional: bool = False
    known_doi: str | None = None  # from PAPER_DOIS when the citation has none

    @property
    def doi(self) -> str | None:
        """The DOI written in the citation (``…, doi:10.xxxx/yyy``), else the one listed for the method."""
        match = _DOI.search(self.citation)
        return match.group(1).rstrip(".") if match else self.known_doi

    @property
    def citation_text(self) -> str:
        """The citation without its DOI."""
        return _DOI.sub("", self.citation).strip().rstrip(",").strip()

    @property
    def citation_url(self) -> str:
        """Where to find the paper: its DOI link, or a literature search for the reference."""
        doi = self.doi
        return (
            f"https://doi.org/{doi}"
            if doi
            else f"https://scholar.google.com/scholar?q={quote_plus(self.citation_text)}"
        )


def method_facts(spec: ModelSpec) -> MethodFacts:
    """The catalogue entry of ``spec.method``, or what the spec itself recorded when it is not registered."""
    from livedenoise.models.catalogue import list_methods, method_info

    if spec.method in list_methods():
        info = method_info(spec.method)
        return MethodFacts(
            name=info.name,
            family=info.family,
            citation=info.citation,
            paper=info.paper,
            description=info.description,
            provisional=info.provisional,
            known_doi=PAPER_DOIS.get(info.name),
        )
    extra = spec.extra
    return MethodFacts(
        name=spec.method,
        family=str(extra.get("family") or "self-supervised denoising"),
        citation=str(extra.get("citation") or ""),
        paper=str(extra.get("paper") or ""),
        description=str(extra.get("description") or ""),
        provisional=bool(extra.get("provisional", False)),
    )
