//! Contracts (issue 5): the building blocks the snapshot and the request pipeline use to hold both sides of a
//! service to its contract. [`formats`] checks Indonesian reference data (NIK, NIP, kode wilayah, NPWP, NIB,
//! phone numbers) as JSON Schema custom formats; [`openapi`] imports an OpenAPI 3.0/3.1 document into operations
//! with self-contained JSON Schemas, and exports a service as the gateway enforces it.

pub mod formats;
pub mod openapi;
