//! OpenAPI import/export (in progress).
