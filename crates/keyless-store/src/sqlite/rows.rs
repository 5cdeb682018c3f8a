//! Row → record decoding for SQLite.

use sqlx::Row;

use crate::StoreError;
use crate::records::*;

pub(super) use crate::row_decoding::json_text;

crate::row_decoding::row_decoders!(sqlx::sqlite::SqliteRow);
