//! The schema follows the conventions of the GraphQL APIs its clients already know (GitHub's,
//! Shopify's, Relay's specs), checked on the SDL the code builds: one mutation shape, input
//! types named `…Input`, no Rust-style suffixes in type names, connections for every list
//! that can grow, a `Node` interface, and enums with an `OTHER` member for Stripe's statuses.

use std::collections::BTreeMap;

use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{FieldDefinition, TypeKind, TypeSystemDefinition};

fn types() -> BTreeMap<String, TypeKind> {
    let document = parse_schema(cardstream_api::sdl()).expect("the SDL parses");
    document
        .definitions
        .into_iter()
        .filter_map(|d| match d {
            TypeSystemDefinition::Type(t) => Some((t.node.name.node.to_string(), t.node.kind)),
            _ => None,
        })
        .collect()
}

fn fields(kind: &TypeKind) -> Vec<&FieldDefinition> {
    match kind {
        TypeKind::Object(o) => o.fields.iter().map(|f| &f.node).collect(),
        TypeKind::Interface(i) => i.fields.iter().map(|f| &f.node).collect(),
        _ => vec![],
    }
}

fn pascal(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

#[test]
fn every_mutation_takes_one_input_and_returns_its_payload() {
    let types = types();
    let mutation = &types["Mutation"];
    let mutations = fields(mutation);
    assert!(mutations.len() >= 13, "{} mutations", mutations.len());
    for field in mutations {
        let name = pascal(&field.name.node);
        let args: Vec<String> = field
            .arguments
            .iter()
            .map(|a| format!("{}: {}", a.node.name.node, a.node.ty.node))
            .collect();
        assert_eq!(
            args,
            [format!("input: {name}Input!")],
            "{}",
            field.name.node
        );
        assert_eq!(field.ty.node.to_string(), format!("{name}Payload!"));
        let TypeKind::InputObject(input) = &types[&format!("{name}Input")] else {
            panic!("{name}Input is not an input type");
        };
        assert!(
            input
                .fields
                .iter()
                .any(|f| f.node.name.node == "clientMutationId"),
            "{name}Input has no clientMutationId"
        );
        assert!(
            fields(&types[&format!("{name}Payload")])
                .iter()
                .any(|f| f.name.node == "clientMutationId"),
            "{name}Payload has no clientMutationId"
        );
    }
}

#[test]
fn type_names_say_what_they_are() {
    for (name, kind) in types() {
        let input = matches!(kind, TypeKind::InputObject(_));
        assert_eq!(input, name.ends_with("Input"), "{name}");
        for suffix in ["Object", "View", "Value", "Type"] {
            assert!(
                !name.ends_with(suffix),
                "{name} ends with a Rust-style suffix"
            );
        }
        // A kind is a word of the domain only where the objects have a `kind` (Stripe's
        // `type`); `RoleKind` and `FailModeKind` were Rust names.
        assert!(
            !name.ends_with("Kind") || ["InvitationKind", "TransactionKind"].contains(&&*name),
            "{name} ends with a Rust-style suffix"
        );
    }
}

/// Object types a list can hold many of; a list of them must be a connection.
const GROWING: [&str; 6] = [
    "Card",
    "Cardholder",
    "Authorization",
    "Dispute",
    "User",
    "Invitation",
];

#[test]
fn every_list_that_can_grow_is_a_connection_paged_both_ways() {
    let types = types();
    let mut connections = 0;
    for (name, kind) in &types {
        if name.ends_with("Connection") || name.ends_with("Edge") {
            continue;
        }
        for field in fields(kind) {
            let ty = field.ty.node.to_string();
            for node in GROWING {
                assert!(
                    !ty.starts_with(&format!("[{node}")),
                    "{name}.{} is a plain list of {node}",
                    field.name.node
                );
            }
            if ty.trim_end_matches('!').ends_with("Connection") {
                connections += 1;
                let args: Vec<&str> = field
                    .arguments
                    .iter()
                    .map(|a| a.node.name.node.as_str())
                    .collect();
                for arg in ["first", "after", "last", "before"] {
                    assert!(
                        args.contains(&arg),
                        "{name}.{} has no `{arg}`",
                        field.name.node
                    );
                }
            }
        }
    }
    assert!(connections >= 9, "{connections} connection fields");
    let page_info: Vec<&str> = fields(&types["PageInfo"])
        .iter()
        .map(|f| f.name.node.as_str())
        .collect();
    for field in ["hasNextPage", "hasPreviousPage", "startCursor", "endCursor"] {
        assert!(page_info.contains(&field), "PageInfo.{field}");
    }
    for counted in ["CardConnection", "CardholderConnection", "UserConnection"] {
        assert!(
            fields(&types[counted])
                .iter()
                .any(|f| f.name.node == "totalCount"),
            "{counted}.totalCount"
        );
    }
}

#[test]
fn stripe_objects_are_nodes_and_their_statuses_enums_with_other() {
    let types = types();
    assert!(matches!(types["Node"], TypeKind::Interface(_)));
    for node in [
        "Card",
        "Cardholder",
        "Authorization",
        "Transaction",
        "Dispute",
    ] {
        let TypeKind::Object(object) = &types[node] else {
            panic!("{node} is not an object");
        };
        assert!(
            object.implements.iter().any(|i| i.node == "Node"),
            "{node} does not implement Node"
        );
    }
    for (object, field, enumeration) in [
        ("Card", "status", "CardStatus"),
        ("Cardholder", "status", "CardholderStatus"),
        ("Authorization", "status", "AuthorizationStatus"),
        ("Dispute", "status", "DisputeStatus"),
        ("Transaction", "kind", "TransactionKind"),
    ] {
        let ty = fields(&types[object])
            .iter()
            .find(|f| f.name.node == field)
            .map(|f| f.ty.node.to_string());
        assert_eq!(ty.as_deref(), Some(&*format!("{enumeration}!")));
        let TypeKind::Enum(values) = &types[enumeration] else {
            panic!("{enumeration} is not an enum");
        };
        assert!(values.values.iter().any(|v| v.node.value.node == "OTHER"));
        let raw = format!("raw{}", pascal(field));
        assert!(
            fields(&types[object]).iter().any(|f| f.name.node == raw),
            "{object}.{raw} keeps Stripe's value"
        );
    }
}
