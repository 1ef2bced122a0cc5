//! The WIT `types` interface: nothing to serve (it has no functions), and
//! the conversions between its generated types and `item_model`'s.

use crate::ItemStoreHost;
use crate::bindings::wit;

item_model::wit_conversions!(wit);

impl wit::Host for ItemStoreHost {}
