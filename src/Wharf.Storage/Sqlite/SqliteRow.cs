using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Wharf.Storage.Sqlite;

/// <summary>
/// The current row of a statement stepped by <see cref="SqliteDatabase.Query{T}"/>, read in place: each value is
/// one or two calls straight into SQLite, without Microsoft.Data.Sqlite's reader or SQLitePCL's handle bookkeeping.
/// Valid only while the row is current.
/// </summary>
internal readonly unsafe ref struct SqliteRow(IntPtr statement)
{
    public bool IsNull(int column) => SqliteColumns.sqlite3_column_type(statement, column) == SQLitePCL.raw.SQLITE_NULL;

    public long Int64(int column)
    {
        long value = SqliteColumns.sqlite3_column_int64(statement, column);
        return value != 0 || !IsNull(column) ? value : throw NullValue(column); // SQLite reads NULL as 0
    }

    public long? NullableInt64(int column) => IsNull(column) ? null : Int64(column);

    public string String(int column) => NullableString(column) ?? throw NullValue(column);

    public string? NullableString(int column)
    {
        byte* text = SqliteColumns.sqlite3_column_text(statement, column); // first: it may convert the value, which sets its size
        return text is null ? null : Encoding.UTF8.GetString(text, SqliteColumns.sqlite3_column_bytes(statement, column));
    }

    public byte[] Blob(int column)
    {
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
        byte* text = SqliteColumns.sqlite3_column_text(statement, column);
        return text is null ? default : new ReadOnlySpan<byte>(text, SqliteColumns.sqlite3_column_bytes(statement, column));
    }

    private static InvalidOperationException NullValue(int column) => new($"Column {column} is null where a value is required.");
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
}
