using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Wharf.Storage.Sqlite;

/// <summary>
/// The current row of a statement stepped by <see cref="SqliteDatabase.QueryRows{T}"/>, read in place: each value is
/// one or two calls straight into SQLite, without Microsoft.Data.Sqlite's reader or SQLitePCL's handle bookkeeping.
/// Valid only while the row is current.
/// </summary>
internal readonly unsafe ref struct SqliteRow(IntPtr statement)
{
    private const int SqliteNull = 5;

    public bool IsNull(int column) => SqliteColumns.sqlite3_column_type(statement, column) == SqliteNull;

    public long Int64(int column) => SqliteColumns.sqlite3_column_int64(statement, column);

    public long? NullableInt64(int column) => IsNull(column) ? null : Int64(column);

    public string String(int column) =>
        NullableString(column) ?? throw new InvalidOperationException($"Column {column} is null where a value is required.");

    public string? NullableString(int column)
    {
        byte* text = SqliteColumns.sqlite3_column_text(statement, column); // first: it may convert the value, which sets its size
        return text is null ? null : Encoding.UTF8.GetString(text, SqliteColumns.sqlite3_column_bytes(statement, column));
    }

    public byte[] Blob(int column)
    {
        byte* bytes = SqliteColumns.sqlite3_column_blob(statement, column); // first: it may convert the value, which sets its size
        return bytes is null ? [] : new ReadOnlySpan<byte>(bytes, SqliteColumns.sqlite3_column_bytes(statement, column)).ToArray();
    }

    /// <summary>The value as UTF-8 text (empty for SQL NULL), valid only while the row is current.</summary>
    public ReadOnlySpan<byte> Utf8(int column)
    {
        byte* text = SqliteColumns.sqlite3_column_text(statement, column);
        return text is null ? default : new ReadOnlySpan<byte>(text, SqliteColumns.sqlite3_column_bytes(statement, column));
    }
}

/// <summary>
/// SQLite's column accessors. They only read the current row: no I/O, no callback, and no lock that another thread
/// holds (a connection here is used by one query at a time), so they run without the runtime's GC transition, a
/// few nanoseconds instead of tens. The library is the one SQLitePCL loads.
/// </summary>
internal static unsafe partial class SqliteColumns
{
    private const string Library = "e_sqlite3";

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
