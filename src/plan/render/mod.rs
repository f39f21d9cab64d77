//! Renderers of plans: text, JSON and Markdown.
