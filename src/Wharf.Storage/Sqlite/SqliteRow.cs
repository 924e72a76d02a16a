using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Wharf.Storage.Sqlite;

/// <summary>
/// The current row of a statement stepped by <see cref="SqliteDatabase.Query{T}"/>, read in place: each value is
/// one or two calls straight into SQLite, without Microsoft.Data.Sqlite's reader or SQLitePCL's handle bookkeeping.
/// Valid only while the row is current. Every mapper reads each column as its declared type (the accessors rely on
/// it, see <see cref="SqliteColumns"/>); <see cref="SqliteColumnTypeCheck"/> verifies that where it is switched on.
/// </summary>
internal readonly unsafe ref struct SqliteRow(IntPtr statement)
{
    public bool IsNull(int column) => SqliteColumns.sqlite3_column_type(statement, column) == SQLitePCL.raw.SQLITE_NULL;

    public long Int64(int column)
    {
        if (SqliteColumnTypeCheck.Enabled)
        {
            SqliteColumnTypeCheck.Check(statement, column, SQLitePCL.raw.SQLITE_INTEGER);
        }
        long value = SqliteColumns.sqlite3_column_int64(statement, column);
        return value != 0 || !IsNull(column) ? value : throw NullValue(column); // SQLite reads NULL as 0
    }

    public long? NullableInt64(int column) => IsNull(column) ? null : Int64(column);

    public string String(int column) => NullableString(column) ?? throw NullValue(column);

    public string? NullableString(int column)
    {
        if (SqliteColumnTypeCheck.Enabled)
        {
            SqliteColumnTypeCheck.Check(statement, column, SQLitePCL.raw.SQLITE_TEXT);
        }
        byte* text = SqliteColumns.sqlite3_column_text(statement, column); // first: it may convert the value, which sets its size
        return text is null ? null : Encoding.UTF8.GetString(text, SqliteColumns.sqlite3_column_bytes(statement, column));
    }

    public byte[] Blob(int column)
    {
        if (SqliteColumnTypeCheck.Enabled)
        {
            SqliteColumnTypeCheck.Check(statement, column, SQLitePCL.raw.SQLITE_BLOB);
        }
        byte* bytes = SqliteColumns.sqlite3_column_blob(statement, column);
        if (bytes is null)
        {
            return IsNull(column) ? throw NullValue(column) : []; // an empty blob has no pointer either
        }
        return new ReadOnlySpan<byte>(bytes, SqliteColumns.sqlite3_column_bytes(statement, column)).ToArray();
    }

    /// <summary>The value as UTF-8 text (empty for SQL NULL), valid only while the row is current.</summary>
    public ReadOnlySpan<byte> Utf8(int column)
    {
        if (SqliteColumnTypeCheck.Enabled)
        {
            SqliteColumnTypeCheck.Check(statement, column, SQLitePCL.raw.SQLITE_TEXT);
        }
        byte* text = SqliteColumns.sqlite3_column_text(statement, column);
        return text is null ? default : new ReadOnlySpan<byte>(text, SqliteColumns.sqlite3_column_bytes(statement, column));
    }

    private static InvalidOperationException NullValue(int column) => new($"Column {column} is null where a value is required.");
}

/// <summary>
/// A check, for tests, of the rule <see cref="SqliteRow"/> relies on: each column is read as its declared type. When
/// the runtime switch <see cref="Switch"/> is on (the storage tests turn it on for their whole run), every accessor
/// first compares what it reads as with the column's declared type (<c>sqlite3_column_decltype</c>: an INTEGER column
/// is read with <c>Int64</c>, TEXT with <c>String</c> or <c>Utf8</c>, BLOB with <c>Blob</c>) and with the value's own
/// type (<c>sqlite3_column_type</c>, which also covers expressions, which have no declared type; a NULL value passes
/// that second check).
/// A mismatch throws. Off (the default), <see cref="Enabled"/> is a constant false once the JIT has seen it, and the
/// check costs nothing.
/// </summary>
internal static unsafe class SqliteColumnTypeCheck
{
    public const string Switch = "Wharf.Storage.Sqlite.CheckColumnTypes";

    public static readonly bool Enabled = AppContext.TryGetSwitch(Switch, out bool enabled) && enabled;

    public static void Check(IntPtr statement, int column, int readAs)
    {
        int valueType = SqliteColumns.sqlite3_column_type(statement, column); // first: reading may convert the value
        byte* declared = SqliteColumns.sqlite3_column_decltype(statement, column);
        string? declaredType = declared is null ? null : Marshal.PtrToStringUTF8((IntPtr)declared);
        if (declaredType is not null && Affinity(declaredType) != readAs)
        {
            throw new InvalidOperationException(
                $"Column {column} ({Name(statement, column)}) is declared {declaredType} but is read as {TypeName(readAs)}.");
        }
        if (valueType != SQLitePCL.raw.SQLITE_NULL && valueType != readAs)
        {
            throw new InvalidOperationException(
                $"Column {column} ({Name(statement, column)}) holds a value of type {TypeName(valueType)} but is read as {TypeName(readAs)}.");
        }
    }

    /// <summary>The type a declared type stands for, by SQLite's affinity rules (the schema uses INTEGER, TEXT, BLOB).</summary>
    private static int Affinity(string declaredType)
    {
        string type = declaredType.ToUpperInvariant();
        return type.Contains("INT", StringComparison.Ordinal) ? SQLitePCL.raw.SQLITE_INTEGER
            : type.Contains("CHAR", StringComparison.Ordinal) || type.Contains("CLOB", StringComparison.Ordinal) || type.Contains("TEXT", StringComparison.Ordinal) ? SQLitePCL.raw.SQLITE_TEXT
            : type.Contains("BLOB", StringComparison.Ordinal) || type.Length == 0 ? SQLitePCL.raw.SQLITE_BLOB
            : SQLitePCL.raw.SQLITE_FLOAT; // REAL or NUMERIC: no accessor reads those
    }

    private static string TypeName(int type) => type switch
    {
        SQLitePCL.raw.SQLITE_INTEGER => "INTEGER",
        SQLitePCL.raw.SQLITE_TEXT => "TEXT",
        SQLitePCL.raw.SQLITE_BLOB => "BLOB",
        SQLitePCL.raw.SQLITE_FLOAT => "REAL",
        _ => "NULL",
    };

    private static string Name(IntPtr statement, int column)
    {
        byte* name = SqliteColumns.sqlite3_column_name(statement, column);
        return name is null ? "?" : Marshal.PtrToStringUTF8((IntPtr)name) ?? "?";
    }
}

/// <summary>
/// SQLite's column accessors. Read as the type the column holds (text as text, integers as integers: every mapper
/// does), they only return the current row's pointer or number: no I/O, no allocation, no callback, and no lock
/// another thread holds (a connection here is used by one query at a time). So they run without the runtime's GC
/// transition, a few nanoseconds instead of tens. The library is the one SQLitePCL loads (checked at start by
/// <see cref="SqliteDatabase"/>); read as another type, SQLite would convert the value and allocate.
/// </summary>
internal static unsafe partial class SqliteColumns
{
    private const string Library = "e_sqlite3";

    [LibraryImport(Library), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    internal static partial int sqlite3_libversion_number();

    [LibraryImport(Library), SuppressGCTransition, UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    internal static partial int sqlite3_column_type(IntPtr statement, int column);

    [LibraryImport(Library), SuppressGCTransition, UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    internal static partial long sqlite3_column_int64(IntPtr statement, int column);

    [LibraryImport(Library), SuppressGCTransition, UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    internal static partial byte* sqlite3_column_text(IntPtr statement, int column);

    [LibraryImport(Library), SuppressGCTransition, UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    internal static partial byte* sqlite3_column_blob(IntPtr statement, int column);

    [LibraryImport(Library), SuppressGCTransition, UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    internal static partial int sqlite3_column_bytes(IntPtr statement, int column);

    // For SqliteColumnTypeCheck only: with the GC transition, as they may allocate the first time they are called.
    [LibraryImport(Library), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    internal static partial byte* sqlite3_column_decltype(IntPtr statement, int column);

    [LibraryImport(Library), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    internal static partial byte* sqlite3_column_name(IntPtr statement, int column);
}
