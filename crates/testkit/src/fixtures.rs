//! Object type definitions the tests share.

use serde_json::{Value, json};

/// A vehicle with one attribute of each of the seven types.
pub fn vehicle_definition() -> Value {
    json!({
        "label": "Vehicles",
        "attributes": [
            {"key": "name", "label": "Name", "type": "text"},
            {"key": "price", "label": "Price", "type": "number"},
            {"key": "electric", "label": "Electric", "type": "boolean"},
            {"key": "registered", "label": "Registered", "type": "date"},
            {"key": "website", "label": "Website", "type": "url"},
            {"key": "color", "label": "Color", "type": "category",
             "options": [{"key": "red", "label": "Red"}, {"key": "blue", "label": "Blue"}]},
            {"key": "features", "label": "Features", "type": "multiple_category",
             "options": [{"key": "gps", "label": "GPS"}, {"key": "abs", "label": "ABS"},
                         {"key": "ac", "label": "Air conditioning"}]}
        ]
    })
}

/// A garage that vehicles can be linked to.
pub fn garage_definition() -> Value {
    json!({
        "label": "Garages",
        "attributes": [
            {"key": "name", "label": "Name", "type": "text"},
            {"key": "city", "label": "City", "type": "text"}
        ],
        "associations": ["vehicle"]
    })
}
