-- Retrieval indexes on the pgvector backend (docs/deployment.md): one table per index version, in a database of
-- their own, with the vector extension. The index build also runs CREATE EXTENSION IF NOT EXISTS vector, for a
-- database made by hand on a volume initialised before this file existed.
CREATE DATABASE llmops_indexes;
\connect llmops_indexes
CREATE EXTENSION IF NOT EXISTS vector;
