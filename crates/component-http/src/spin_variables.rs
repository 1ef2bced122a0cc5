//! Spin's application variables (`fermyon:spin/variables@2.0.0`), the way
//! Spin passes configuration and secrets to a component.

mod bindings {
    wit_bindgen::generate!({
        inline: "
            package edge-items:component-http;

            world spin-variables {
                import fermyon:spin/variables@2.0.0;
            }
        ",
        path: "wit/fermyon-spin-variables.wit",
        world: "edge-items:component-http/spin-variables",
        generate_all,
    });
}

/// The non-blank value of the component variable `name` lowercased (Spin's
/// variable names are lower snake case); `None` when Spin does not define it.
pub fn get(name: &str) -> Option<String> {
    // The world's type lives in a custom section next to this helper; the
    // import itself may be inlined into another object, and the linker
    // would leave the section behind ("module requires an import interface
    // named fermyon:spin/variables"). Calling it keeps them together.
    bindings::__link_custom_section_describing_imports();
    bindings::fermyon::spin::variables::get(&name.to_ascii_lowercase())
        .ok()
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}
