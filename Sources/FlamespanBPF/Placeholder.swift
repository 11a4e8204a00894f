let placeholder = EmbeddedBPFObjects.profile
