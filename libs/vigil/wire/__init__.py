"""What travels between Vigil's processes: records, Avro, the codec, topics, batch decoding.

Pure data and encoding: nothing here opens a connection.
"""
