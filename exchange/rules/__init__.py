"""The business rules as pure functions: no files, no clock, no database.

``outbound`` holds R1-R8 (CEE to Mobile), ``inbound`` R9-R14 (Mobile to CEE).
"""
