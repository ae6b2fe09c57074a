//! wsis-node: storage, document engine and networking (work in progress; see issue "node").
