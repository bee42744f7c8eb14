-- chat-tui cache schema v3, frozen as released. Never edit: tests build a v3 file from it
-- to prove that migrating to the current schema keeps the outbox, drafts and search.
PRAGMA auto_vacuum = INCREMENTAL;
CREATE TABLE "conversation" ("id" TEXT NOT NULL PRIMARY KEY, "title" TEXT NOT NULL, "creator" TEXT NOT NULL, "members" TEXT NOT NULL, "assistant" INTEGER NOT NULL, "created_at" REAL, "updated_at" REAL, "last_activity_at" REAL, "unread_count" INTEGER NOT NULL, "pending" INTEGER NOT NULL, "removed" INTEGER NOT NULL, "has_more" INTEGER NOT NULL, "read_seq" INTEGER, "read_message_id" TEXT, "synced_seq" INTEGER);
CREATE TABLE "draft" ("conversation_id" TEXT NOT NULL PRIMARY KEY, "text" TEXT NOT NULL, "cursor_row" INTEGER NOT NULL, "cursor_col" INTEGER NOT NULL, "updated_at" REAL NOT NULL);
CREATE TABLE "gap" ("id" INTEGER NOT NULL PRIMARY KEY, "conversation_id" TEXT NOT NULL, "before_message_id" TEXT NOT NULL, "before_seq" INTEGER NOT NULL, "after_seq" INTEGER, FOREIGN KEY ("conversation_id") REFERENCES "conversation" ("id") ON DELETE CASCADE);
CREATE TABLE "message" ("pk" INTEGER NOT NULL PRIMARY KEY, "id" TEXT NOT NULL, "conversation_id" TEXT NOT NULL, "author" TEXT NOT NULL, "body" TEXT NOT NULL, "created_at" REAL NOT NULL, "edited_at" REAL, "seq" INTEGER, "version" INTEGER, "deleted" INTEGER NOT NULL, "streaming" INTEGER NOT NULL, "error" INTEGER NOT NULL, "sort_key" INTEGER NOT NULL, "pending_body" TEXT, "pending_deleted" INTEGER NOT NULL, FOREIGN KEY ("conversation_id") REFERENCES "conversation" ("id") ON DELETE CASCADE);
CREATE VIRTUAL TABLE "message_index" USING fts5 ("body", tokenize="unicode61 remove_diacritics 2");
CREATE TABLE "meta" ("key" TEXT NOT NULL PRIMARY KEY, "value" TEXT);
CREATE TABLE "outbox" ("id" INTEGER NOT NULL PRIMARY KEY, "kind" TEXT NOT NULL, "conversation_id" TEXT NOT NULL, "message_id" TEXT, "payload" TEXT NOT NULL, "state" TEXT NOT NULL, "attempts" INTEGER NOT NULL, "transient_failures" INTEGER NOT NULL, "next_attempt_at" REAL NOT NULL, "last_error" TEXT, "created_at" REAL NOT NULL, "queued_at" REAL NOT NULL);
CREATE TABLE "read_marker" ("conversation_id" TEXT NOT NULL, "username" TEXT NOT NULL, "message_id" TEXT NOT NULL, "seq" INTEGER NOT NULL, PRIMARY KEY ("conversation_id", "username"));
CREATE TABLE "scroll_anchor" ("conversation_id" TEXT NOT NULL PRIMARY KEY, "message_id" TEXT NOT NULL);
CREATE INDEX "gap_conversation_id" ON "gap" ("conversation_id");
CREATE UNIQUE INDEX "message_id" ON "message" ("id");
CREATE INDEX "message_conversation_id" ON "message" ("conversation_id");
CREATE INDEX "message_seq" ON "message" ("seq");
CREATE INDEX "message_conversation_id_sort_key" ON "message" ("conversation_id", "sort_key");
CREATE INDEX "message_created_at" ON "message" ("created_at");
CREATE INDEX "outbox_conversation_id" ON "outbox" ("conversation_id");
CREATE INDEX "outbox_message_id" ON "outbox" ("message_id");
CREATE TRIGGER message_ai AFTER INSERT ON message
       WHEN NOT new.deleted AND NOT new.pending_deleted BEGIN
         INSERT INTO message_index(rowid, body) VALUES (new.pk, coalesce(new.pending_body, new.body));
       END;
CREATE TRIGGER message_ad AFTER DELETE ON message BEGIN
         DELETE FROM message_index WHERE rowid = old.pk;
       END;
CREATE TRIGGER message_au AFTER UPDATE OF body, pending_body, deleted,
       pending_deleted ON message BEGIN
         DELETE FROM message_index WHERE rowid = old.pk;
         INSERT INTO message_index(rowid, body)
           SELECT new.pk, coalesce(new.pending_body, new.body)
           WHERE NOT new.deleted AND NOT new.pending_deleted;
       END;
PRAGMA user_version = 3;
