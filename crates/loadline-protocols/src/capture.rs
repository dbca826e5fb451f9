//! A step's `capture:` mapping, read the same way by every protocol: each name is
//! defined through the build context (checked, given its slot, known to the
//! steps after this one even when something is wrong), and each source is read
//! by the protocol that knows what it captures from.

use loadline_core::build::BuildCtx;
use loadline_doc::de::{Entries, Lenient, Spanned};

/// The captures of `entries` whose name and source are both sound: slot, name
/// and what `source` made of the capture's document.
pub(crate) fn read<D, S>(
    ctx: &mut dyn BuildCtx,
    entries: &Entries<Lenient<Spanned<D>>>,
    mut source: impl FnMut(&mut dyn BuildCtx, &Spanned<D>) -> Option<S>,
) -> Vec<(usize, String, S)> {
    let mut out = Vec::new();
    for (name, doc) in &entries.0 {
        let slot = ctx.capture(&name.value, &name.span);
        let read = doc.get().and_then(|d| source(ctx, d));
        if let (Some(slot), Some(read)) = (slot, read) {
            out.push((slot, name.value.clone(), read));
        }
    }
    out
}
