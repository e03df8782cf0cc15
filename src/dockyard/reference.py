"""Image references (layer L0): Docker's reference grammar, normalisation and familiar forms.

Pure code, no I/O. It follows the grammar of `distribution/reference` and the normalisation the
docker CLI and daemon apply, so the same strings are accepted, rejected (with the same error
wording) and shown the same way:

    reference        := name [ ":" tag ] [ "@" digest ]
    name             := [ domain "/" ] path
    domain           := host [ ":" port ]          host: DNS-ish name, IPv4, or "[" IPv6 "]"
    path             := component ( "/" component )*
    component        := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    tag              := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest           := algorithm ":" hex          (hex: 32 or more hex digits)

Normalisation ("familiar" → full): a first path component is a domain only if it contains "." or
":", is "localhost", or has upper-case letters; otherwise the domain is `docker.io`.
`index.docker.io` becomes `docker.io`, and a single-component name on `docker.io` gets the
`library/` prefix. `parse_reference` also adds the tag `latest` when neither a tag nor a digest
was given.

Invariants: every `Reference` returned by a function of this module is valid and normalised
(`domain` is never empty, `path` has at most 255 characters, `tag` and `digest` are either
`None` or valid); `parse_reference(r.string()) == r` for such references. Every rejection raises
`InvalidArgument` with the message Docker prints for the same input.

One deliberate deviation: when the first component looks like a domain but is not one
(`foo_bar.com/x`), Docker keeps the whole string as a path with an empty domain; we reject it
with "invalid reference format" so that every reference has a registry to talk to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cache

from dockyard.errors import InvalidArgument
from dockyard.gostr import go_quote

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
DEFAULT_REGISTRY_HOST = "registry-1.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
LOCALHOST = "localhost"
MAX_PATH_LENGTH = 255

# Error messages, worded as distribution/reference and go-digest word them.
ERR_REFERENCE_INVALID_FORMAT = "invalid reference format"
ERR_TAG_INVALID_FORMAT = "invalid tag format"
ERR_DIGEST_INVALID_FORMAT = "invalid digest format"
ERR_NAME_CONTAINS_UPPERCASE = "repository name must be lowercase"
ERR_NAME_EMPTY = "repository name must have at least one component"
ERR_NAME_TOO_LONG = f"repository name must not be more than {MAX_PATH_LENGTH} characters"
ERR_CHECKSUM_INVALID_FORMAT = "invalid checksum digest format"
ERR_CHECKSUM_INVALID_LENGTH = "invalid checksum digest length"
ERR_DIGEST_UNSUPPORTED = "unsupported digest algorithm"
ERR_TAG_WITH_DIGEST = "refusing to create a tag with a digest reference"
ERR_IMPORT_DIGEST = "cannot import digest reference"

# Hex lengths of the algorithms Docker registers (crypto/sha256 and crypto/sha512).
_ALGORITHM_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}

# --- grammar pieces (compiled lazily: importing this module must stay cheap) ---------------
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_REMOTE_NAME = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN_AND_PORT = rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_NAME = rf"(?:{_DOMAIN_AND_PORT}/)?{_REMOTE_NAME}"


@cache
def _reference_re() -> re.Pattern[str]:
    return re.compile(rf"({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?", re.ASCII)


@cache
def _name_re() -> re.Pattern[str]:
    return re.compile(rf"(?:({_DOMAIN_AND_PORT})/)?({_REMOTE_NAME})", re.ASCII)


@cache
def _tag_re() -> re.Pattern[str]:
    return re.compile(_TAG, re.ASCII)


@cache
def _digest_re() -> re.Pattern[str]:
    return re.compile(_DIGEST, re.ASCII)


@cache
def _go_digest_re() -> re.Pattern[str]:
    # go-digest's own (stricter-algorithm, looser-encoding) shape, used for unknown algorithms.
    return re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+", re.ASCII)


_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")


@dataclass(frozen=True, slots=True)
class Reference:
    """A normalised named reference: `domain/path[:tag][@digest]`.

    Build instances with the parse functions or the `with_*` methods, which validate; the
    constructor trusts its arguments.
    """

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The full repository name, e.g. `docker.io/library/busybox`."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The repository name as Docker shows it: `busybox`, `foo/bar`, `localhost:5000/x`."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        if self.path.startswith(OFFICIAL_REPO_PREFIX):
            rest = self.path[len(OFFICIAL_REPO_PREFIX) :]
            if "/" not in rest:
                return rest
        return self.path

    @property
    def repository_for_registry(self) -> str:
        """The repository path used in registry URLs (`/v2/<path>/manifests/...`)."""
        return self.path

    @property
    def registry_host(self) -> str:
        """The host (and port) to contact: Docker Hub's `docker.io` is served elsewhere."""
        return DEFAULT_REGISTRY_HOST if self.domain == DEFAULT_DOMAIN else self.domain

    @property
    def is_name_only(self) -> bool:
        return self.tag is None and self.digest is None

    def string(self) -> str:
        """The full normalised form, e.g. `docker.io/library/busybox:latest`."""
        return self.name + self._suffix()

    def familiar_string(self) -> str:
        """The form Docker shows, e.g. `busybox:latest`."""
        return self.familiar_name + self._suffix()

    def _suffix(self) -> str:
        out = ""
        if self.tag is not None:
            out += ":" + self.tag
        if self.digest is not None:
            out += "@" + self.digest
        return out

    def __str__(self) -> str:
        return self.string()

    def with_tag(self, tag: str) -> Reference:
        """This reference with `tag` (the digest, if any, is kept, as Docker's WithTag does)."""
        if not _tag_re().fullmatch(tag):
            raise InvalidArgument(ERR_TAG_INVALID_FORMAT)
        return replace(self, tag=tag)

    def with_digest(self, digest: str) -> Reference:
        """This reference with `digest` (the tag, if any, is kept)."""
        if not _digest_re().fullmatch(digest):
            raise InvalidArgument(ERR_DIGEST_INVALID_FORMAT)
        _validate_digest(digest)
        return replace(self, digest=digest)

    def trimmed(self) -> Reference:
        """The bare repository name, without tag or digest."""
        return Reference(self.domain, self.path)

    def with_default_tag(self) -> Reference:
        """Add the tag `latest` when neither a tag nor a digest is present."""
        return replace(self, tag=DEFAULT_TAG) if self.is_name_only else self

    def pinned(self) -> Reference:
        """Docker's pull form: a reference with a digest drops its tag (the digest wins)."""
        if self.digest is not None and self.tag is not None:
            return replace(self, tag=None)
        return self.with_default_tag()


def parse_reference(s: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise `s` as Docker does (`busybox` → `docker.io/library/busybox:latest`).

    With `default_tag=False` a bare name stays bare (Docker's ParseNormalizedNamed); otherwise
    the tag `latest` is added when neither a tag nor a digest was given (TagNameOnly).
    """
    ref = _parse_normalized_named(s)
    return ref.with_default_tag() if default_tag else ref


def parse_docker_ref(s: str) -> Reference:
    """Docker's ParseDockerRef: normalise, then keep only the digest of `name:tag@digest`,
    or default the tag. The result has exactly one of `tag` and `digest`."""
    return _parse_normalized_named(s).pinned()


def parse_tag_argument(s: str) -> Reference:
    """The TARGET of `docker tag SOURCE TARGET` (and of `commit`/`build -t`): a named, tagged
    reference; a digest is refused. The tag defaults to `latest`."""
    try:
        ref = _parse_normalized_named(s)
    except InvalidArgument as e:
        raise InvalidArgument(
            f"error parsing reference: {go_quote(s)} is not a valid repository/tag: {e.message}"
        ) from None
    if ref.digest is not None:
        raise InvalidArgument(ERR_TAG_WITH_DIGEST)
    return ref.with_default_tag()


def parse_repository_tag(s: str) -> tuple[str, str | None]:
    """Split an unnormalised `repo[:tag]` (or `repo@digest`) without validating it.

    The tag is what follows the last ":" unless that part contains "/" (then the ":" belongs
    to a registry port, as in `localhost:5000/foo`). With "@", the part after it is returned
    in place of the tag, as Docker's ParseRepositoryTag does. Absent tag → `None`.
    """
    if "@" in s:
        repo, _, rest = s.partition("@")
        return repo, rest
    repo, sep, tag = s.rpartition(":")
    if not sep or "/" in tag:
        return s, None
    return repo, tag


def repo_tag_reference(repo: str, tag: str = "") -> Reference:
    """The Engine API's `repo` + `tag` form fields (import, commit) as one tagged reference.

    `repo` may itself carry a tag; an explicit `tag` replaces it. Digests are refused. The tag
    defaults to `latest`.
    """
    ref = _parse_normalized_named(repo)
    if ref.digest is not None:
        raise InvalidArgument(ERR_IMPORT_DIGEST)
    if tag:
        return ref.with_tag(tag)
    return ref.with_default_tag()


# --- the parser ----------------------------------------------------------------------------


def _parse_normalized_named(s: str) -> Reference:
    """Docker's ParseNormalizedNamed: familiar or full string → validated full reference."""
    if _IDENTIFIER_RE.fullmatch(s):
        raise InvalidArgument(
            f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = _split_docker_domain(s)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        raise InvalidArgument(
            f"invalid reference format: repository name ({remote}) must be lowercase"
        )
    return _parse(f"{domain}/{remainder}")


def _split_docker_domain(name: str) -> tuple[str, str]:
    """Split `name` into (domain, rest), choosing Docker Hub when the first part is no domain."""
    first, slash, rest = name.partition("/")
    if not slash:
        return DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + name
    if first == LEGACY_DEFAULT_DOMAIN:
        domain, remainder = DEFAULT_DOMAIN, rest
    elif first == LOCALHOST or "." in first or ":" in first or first.lower() != first:
        domain, remainder = first, rest
    else:
        domain, remainder = DEFAULT_DOMAIN, name
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def _parse(s: str) -> Reference:
    """Docker's Parse on an already domain-qualified string."""
    if not s:
        raise InvalidArgument(ERR_NAME_EMPTY)
    m = _reference_re().fullmatch(s)
    if m is None:
        lower = s.lower()
        if lower != s and _reference_re().fullmatch(lower):
            raise InvalidArgument(ERR_NAME_CONTAINS_UPPERCASE)
        raise InvalidArgument(ERR_REFERENCE_INVALID_FORMAT)
    name, tag, digest = m.group(1), m.group(2), m.group(3)
    nm = _name_re().fullmatch(name)
    domain, path = (nm.group(1), nm.group(2)) if nm else (None, name)
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidArgument(ERR_NAME_TOO_LONG)
    if digest is not None:
        _validate_digest(digest)
    if not domain:  # e.g. `foo_bar.com/x`: Docker keeps an empty domain; we refuse it
        raise InvalidArgument(ERR_REFERENCE_INVALID_FORMAT)
    return Reference(domain, path, tag, digest)


def _validate_digest(digest: str) -> None:
    """go-digest's Digest.Validate, for the algorithms Docker registers."""
    algorithm, sep, encoded = digest.partition(":")
    if not sep or not encoded:
        raise InvalidArgument(ERR_CHECKSUM_INVALID_FORMAT)
    length = _ALGORITHM_HEX_LENGTH.get(algorithm)
    if length is None:
        if not _go_digest_re().fullmatch(digest):
            raise InvalidArgument(ERR_CHECKSUM_INVALID_FORMAT)
        raise InvalidArgument(ERR_DIGEST_UNSUPPORTED)
    if len(encoded) != length:
        raise InvalidArgument(ERR_CHECKSUM_INVALID_LENGTH)
    if not re.fullmatch(r"[a-f0-9]+", encoded):
        raise InvalidArgument(ERR_CHECKSUM_INVALID_FORMAT)
