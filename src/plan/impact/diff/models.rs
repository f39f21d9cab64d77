//! The access models of both sides of a plan, computed on demand and dropped once compared.

use super::*;

/// The models of both sides, computed on demand; the after side's are derived from the before
/// side's (only changed policies are evaluated again).
pub(super) struct Models<'w> {
    before: &'w World,
    after: &'w World,
    interner: &'w Interner,
    /// Profile models, before and after.
    profiles: [FxMap<ProfileId, Rc<ProfileModel>>; 2],
    /// What the after side's changed policies do to a profile.
    fresh: FxMap<ProfileId, Rc<ProfileModel>>,
    /// Every masking candidate of a column class, before and after.
    candidates: [FxMap<ClassId, Rc<Vec<MaskCandidate>>>; 2],
    /// The deciding masking candidates of a column class, before and after.
    masks: [FxMap<ClassId, Rc<Vec<MaskCandidate>>>; 2],
}

/// Before (0) or after (1).
pub(super) const BEFORE: usize = 0;
pub(super) const AFTER: usize = 1;

impl<'w> Models<'w> {
    pub(super) fn new(before: &'w World, after: &'w World, interner: &'w Interner) -> Self {
        Models {
            before,
            after,
            interner,
            profiles: Default::default(),
            fresh: FxMap::default(),
            candidates: Default::default(),
            masks: Default::default(),
        }
    }

    pub(super) fn profile(&mut self, side: usize, id: ProfileId) -> Rc<ProfileModel> {
        if let Some(m) = self.profiles[side].get(&id) {
            return Rc::clone(m);
        }
        let profile = self.interner.profile(id);
        let model = if side == BEFORE {
            ProfileModel::new(self.before, profile)
        } else {
            let base = self.profile(BEFORE, id);
            ProfileModel::derive(&base, &self.fresh(id))
        };
        let model = Rc::new(model);
        self.profiles[side].insert(id, Rc::clone(&model));
        model
    }

    /// What the after side's changed policies do to profile `id`.
    pub(super) fn fresh(&mut self, id: ProfileId) -> Rc<ProfileModel> {
        if let Some(m) = self.fresh.get(&id) {
            return Rc::clone(m);
        }
        let model = Rc::new(ProfileModel::fresh(self.after, self.interner.profile(id)));
        self.fresh.insert(id, Rc::clone(&model));
        model
    }

    pub(super) fn candidates(&mut self, side: usize, class: ClassId) -> Rc<Vec<MaskCandidate>> {
        if let Some(m) = self.candidates[side].get(&class) {
            return Rc::clone(m);
        }
        let c = self.interner.class(class);
        let list = if side == BEFORE {
            self.profile(BEFORE, c.profile).masking(c)
        } else {
            let base = self.candidates(BEFORE, class);
            self.fresh(c.profile).derive_masking(&base, c)
        };
        let list = Rc::new(list);
        self.candidates[side].insert(class, Rc::clone(&list));
        list
    }

    /// Drops what is held for profile `id` and its `classes` (recomputed if asked again).
    pub(super) fn forget(&mut self, id: ProfileId, classes: &[ClassId]) {
        for side in [BEFORE, AFTER] {
            self.profiles[side].remove(&id);
            for c in classes {
                self.masks[side].remove(c);
                self.candidates[side].remove(c);
            }
        }
        self.fresh.remove(&id);
    }

    pub(super) fn masks(&mut self, side: usize, class: ClassId) -> Rc<Vec<MaskCandidate>> {
        if let Some(m) = self.masks[side].get(&class) {
            return Rc::clone(m);
        }
        let all = self.candidates(side, class);
        if side == AFTER {
            // Every class is compared once: the candidate lists are not needed again (and
            // hold most of the model's memory on a large tree).
            self.candidates[AFTER].remove(&class);
            self.candidates[BEFORE].remove(&class);
        }
        let list = Rc::new(winners(Rc::try_unwrap(all).unwrap_or_else(|rc| rc.as_ref().clone())));
        self.masks[side].insert(class, Rc::clone(&list));
        list
    }
}
