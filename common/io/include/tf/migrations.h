/*
 * tf/migrations.h - the SQL files of deploy/sql/, in order, embedded at
 * build time by tools/embed-sql.sh into a generated migrations.c;
 * tf_pg_migrate() applies them.
 */
#ifndef TF_MIGRATIONS_H
#define TF_MIGRATIONS_H

#include <stddef.h>

struct tf_migration {
    int version;
    const char *name;
    const char *sql;
};

extern const struct tf_migration tf_migrations[];
extern const size_t tf_migrations_count;

#endif
