//! Pure loading and validation of spec files into the desired state.
